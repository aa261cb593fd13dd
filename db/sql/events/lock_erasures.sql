-- An append that logs texts waits while a deletion is being noted (note_erased.sql), first of its
-- locks, so that it sees that deletion. Appends do not wait for each other here (SHARE locks do
-- not conflict).
LOCK TABLE public.erased_messages IN SHARE MODE
