"""./bin/bench: throughput, latency and DynamoDB cost per request of the API, beside the speed of
the store beneath it, on a local stack the benchmark starts (and stops) itself.

  run.py     the command line and the order of the run
  stack.py   the local stack: embedded PostgreSQL, moto, gunicorn
  data.py    the data set: users in PostgreSQL and Cognito, groups and messages in DynamoDB
  load.py    the load generator (threads, latencies, percentiles)
  stream.py  the stream Lambda's DynamoDB calls for a burst of messages
  report.py  the table on stdout, the JSON file and the targets
"""
