"""An interactive terminal chat (``copilot-chat``) for the proxy's OpenAI-compatible API.

The pure parts (``config``, ``commands``, ``conversation``, ``errors``) know nothing of
terminals or HTTP; ``api`` is the only module that talks to the server (through the
official ``openai`` SDK) and ``terminal`` the only one that knows prompt_toolkit.
"""
