"""`tunesmith data check`: what is wrong with a data set before any compute is spent on it.

One file per check; each takes the loaded items and adds to a `Report`. `run_checks` runs them in
order; `train` runs the fast ones (`FAST_CHECKS`) itself and stops on errors (`data.checks`).
"""
