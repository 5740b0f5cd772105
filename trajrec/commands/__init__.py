"""One module per ``trajrec`` command (see :mod:`trajrec.cli`)."""
