"""Built-in action types, registered through the same hooks as any plugin."""

BUILTIN_PLUGINS = (
    "server.core.builtin.field_update",
    "server.core.builtin.formula",
    "server.core.builtin.email",
    "server.core.builtin.assign",
)
