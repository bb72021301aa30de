"""A Faust model server that reports every prediction, and later every outcome, to driftradar.

Modules: :mod:`~examples.faust_model_server.model` (the churn model it serves),
:mod:`~examples.faust_model_server.app` (the Faust app: agents, topics, the reporting
client) and :mod:`~examples.faust_model_server.traffic` (scoring requests and, later, the
customers' outcomes, as a CRM would send them). See README.md beside this file.
"""
