"""Parley clients: the call page (``client/static``) and ``python -m client``, the command line of the Python
library (``parley``)."""
