"""Many Parley workers on one host: supervisord runs them and HAProxy places each offer on the worker with the
most free call slots (deploy/haproxy.cfg, deploy/supervisord.conf; docs/deployment.md)."""
