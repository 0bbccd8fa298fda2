"""API keys as credentials: their format, their Redis record and their verification.

The keys themselves are managed by the haven.apikeys domain (routes and service); what
the `principal` dependency needs to recognise and check one lives here, below the domains.
"""
