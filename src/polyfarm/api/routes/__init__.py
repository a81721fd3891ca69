"""API routes, one module per area; ``polyfarm.api.app.create_app`` includes them all."""
