"""Webhooks: managing a team's webhooks (``handlers``), queueing a delivery per event and webhook
(``queueing``), sending them in order per webhook with retries (``dispatch``, ``attempts``),
recording the attempts (``recorder``), signing (``signing``), the delivery logs (``logs``) and the
events the queue cannot take (``poison``)."""
