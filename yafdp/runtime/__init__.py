"""The runtime core every backend shares: the event envelope and PutEvents checks, the unit of work, injected
faults, the run database, and the interfaces the backends implement. It imports no
pandas, matplotlib or networkx, so the Lambda package stays small by structure."""
