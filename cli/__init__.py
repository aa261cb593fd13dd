"""The scripts of bin/ (each file there runs one click command of these modules). Scripts depend
on everything: the adapters, the services and the local stack; nothing depends on them."""
