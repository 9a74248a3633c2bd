"""The local backend: the EventBridge-faithful bus, its scheduler and run writer, measured timing, and the
local Step Functions runner, all in this process."""
