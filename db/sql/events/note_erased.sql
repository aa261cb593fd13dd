-- A deleted message, remembered while events are kept (purge_erased.sql), so that insert.sql
-- logs erased any event showing it that comes later. Its lock (ROW EXCLUSIVE) waits for the
-- appends under way (lock_erasures.sql) and holds back new ones until this transaction commits,
-- so none of them can log the text unseen by erase.sql, which runs next.
INSERT INTO public.erased_messages (message_ref) VALUES (%(message_ref)s)
ON CONFLICT (message_ref) DO NOTHING
