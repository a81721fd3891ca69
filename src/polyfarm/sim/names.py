"""Text pools for plausible market questions, slugs, tags and trader profiles."""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

FIRST = (
    "Stephen",
    "Alexandria",
    "Gavin",
    "Josh",
    "Kamala",
    "Pete",
    "Gretchen",
    "Wes",
    "Andy",
    "Ro",
    "Cory",
    "Jon",
    "Amy",
    "Raphael",
    "Chris",
    "Beto",
    "Ruben",
    "Jared",
    "Elena",
    "Marco",
)
LAST = (
    "Smith",
    "Ocasio-Cortez",
    "Newsom",
    "Shapiro",
    "Harris",
    "Buttigieg",
    "Whitmer",
    "Moore",
    "Beshear",
    "Khanna",
    "Booker",
    "Ossoff",
    "Klobuchar",
    "Warnock",
    "Murphy",
    "Gallego",
)
CONTESTS = (
    "the 2028 Democratic presidential nomination",
    "the 2028 Republican presidential nomination",
    "the 2027 UK general election",
    "Best Picture at the 2027 Oscars",
    "the 2026 Ballon d'Or",
    "the 2027 NBA Finals",
    "the 2026 World Series",
    "Time Person of the Year 2026",
)
ASSETS = (
    ("Bitcoin", "btc", 100_000),
    ("Ethereum", "eth", 4_000),
    ("Solana", "sol", 200),
    ("XRP", "xrp", 3),
    ("NVIDIA (NVDA)", "nvda", 240),
    ("Tesla (TSLA)", "tsla", 400),
)
SUBJECTS = (
    "the Fed cut rates at the next meeting",
    "a US recession be declared",
    "OpenAI release GPT-6",
    "SpaceX reach Mars orbit",
    "the Lakers make the playoffs",
    "Taylor Swift announce a new album",
    "the US ban TikTok",
    "gold close above $3,500",
    "Apple release a foldable iPhone",
    "the ECB raise rates",
    "a ceasefire be signed",
    "Real Madrid win the Champions League",
    "Netflix stock hit an all-time high",
)
TAGS: tuple[tuple[str, str, str], ...] = (
    ("2", "Politics", "politics"),
    ("21", "Crypto", "crypto"),
    ("1", "Sports", "sports"),
    ("100", "Tech", "tech"),
    ("120", "Finance", "finance"),
    ("596", "Culture", "culture"),
    ("101", "Elections", "elections"),
    ("235", "Bitcoin", "bitcoin"),
)
ADJECTIVES = ("Trivial", "Agitated", "Gleeful", "Sturdy", "Quiet", "Brave", "Lucky", "Odd")
NOUNS = ("Gopher", "Bricklaying", "Heron", "Walrus", "Comet", "Lantern", "Otter", "Maple")
HANDLES = ("grenadine", "mooseborzoi", "whalewatch", "tailrisk", "yesman", "nomad", "edgelord")


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80]


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def tag_objects(rng: random.Random, count: int) -> list[dict[str, Any]]:
    chosen = rng.sample(TAGS, count)
    return [
        {"id": i, "label": label, "slug": slug, "forceShow": False} for i, label, slug in chosen
    ]


def profile(seed: int, user: int) -> dict[str, str]:
    """A deterministic fake trader: proxy wallet, name and pseudonym."""
    digest = hashlib.sha256(f"{seed}:{user}".encode()).hexdigest()
    pick = int(digest[40:48], 16)
    return {
        "wallet": f"0x{digest[:40]}",
        "name": f"{HANDLES[pick % len(HANDLES)]}{pick % 997}",
        "pseudonym": f"{ADJECTIVES[pick % 8]}-{NOUNS[(pick >> 3) % 8]}",
    }
