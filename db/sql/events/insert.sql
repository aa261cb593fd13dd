-- An event, logged erased (data NULL) when the message whose text it holds was deleted already
-- (erase.sql): a record delivered late never brings a deleted text back.
INSERT INTO public.events (user_uuid, seq, kind, data, event_key, shows)
VALUES (%(user_uuid)s, %(seq)s, %(kind)s,
        CASE WHEN EXISTS (SELECT 1 FROM public.erased_messages WHERE message_ref = %(shows)s)
             THEN NULL ELSE %(data)s::jsonb END,
        %(event_key)s, %(shows)s)
