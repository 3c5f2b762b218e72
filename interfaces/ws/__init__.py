"""The WebSocket gateway: the endpoint and its sessions, the subscriptions' feeds and filters, the
hub of live bus subscriptions a process shares, the messages, the outbox and the poison guard."""
