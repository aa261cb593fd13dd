-- Delivered to every listener when the transaction commits, never before.
SELECT pg_notify('cruddur_events', %(payload)s)
