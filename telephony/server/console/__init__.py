"""The agent console: accounts, the live queue, the handoff card, wrap-up and the supervisor's view."""
