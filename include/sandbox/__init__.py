"""HTTPS emulators of Microsoft Graph (with the Entra token endpoint) and Salesforce.

``python -m include.sandbox`` is the entry point; ``core`` holds what both emulators share
(TLS, fault rules, request counting, the control API, the server), ``graph`` and
``salesforce`` follow moto's per-service split (models / responses / urls / exceptions),
and ``generator`` writes synthetic tenant + org fixture pairs.
"""
