"""One construct per capability, composed by `infra.stack.WabacastStack`.

The folder is deliberately not called `constructs`: `python infra/app.py` puts `infra/` first on sys.path, and a
local `constructs` package there would shadow the `constructs` library that aws-cdk-lib imports.
"""
