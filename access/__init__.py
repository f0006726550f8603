"""Who may do what: API keys (hashed, with roles, expiry, rotation, revocation) and the
stored responses that make POST requests idempotent. No Flask here: the CLI manages keys
with the same services that the API checks them with."""
