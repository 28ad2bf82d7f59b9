"""Configuration: what a config file may say, and checking all of it.

``schema`` is the validated, frozen `Config`; ``load`` reads TOML and reports every problem
with its place; ``provider_types`` holds each provider ``type`` as a row of data;
``prices`` the price table; ``workflows`` the stages of each workflow and their checks;
``budgets`` the spend limits and the tenants.
"""
