"""The gateway: an HTTP server in front of a board, speaking OpenAI's and Anthropic's APIs."""
