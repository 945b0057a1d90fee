"""Great Expectations 1.x data checks (suites as code) for the clip table and the feature arrays.

``from data_checks.run import check_raw, check_features``; see :mod:`data_checks.suites`.
"""
