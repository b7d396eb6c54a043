"""Sample plans, shipped with the package so that an installed `csp-bot demo` finds its plan."""
