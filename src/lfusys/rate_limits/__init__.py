"""Rate limits: requests counted per client address, per target email and per user in fixed windows of
the KV, refused with 429 and ``Retry-After`` beyond a limit (``limits``), applied to routes by the
limit their ``opt`` names (``middleware``)."""
