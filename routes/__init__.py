"""The HTTP layer: one blueprint per area (health, messages, users, activities). A route reads the request,
calls one service and shapes the response; it holds no use case and catches no error (the app
maps errors to statuses in one table, app.py). Helpers shared by the routes are in routes/http.py.
"""
