"""Reading and showing runs and designs: traces, tables, figures, the invariant checker, the event-flow graph,
lint, extension diffs, AsyncAPI, costs and the choreography/orchestration comparison. The only place pandas,
matplotlib and networkx are imported."""
