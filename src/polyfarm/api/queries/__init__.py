"""The API's read models: parameterised SQL, one module per page of the dashboard."""
