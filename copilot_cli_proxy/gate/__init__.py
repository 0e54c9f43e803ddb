"""The gate: pure ASGI middleware that decides whether a request reaches a route.

Auth, rate limit and size limits are plain ASGI callables, never starlette's
``BaseHTTPMiddleware``: that one buffers the response in a separate task, which
breaks streaming and hides the client's disconnect from the chat route.
"""
