"""`haven up`: a local cluster of instances behind nginx or HAProxy."""
