"""Action plugins shipped with Dealflow, each registered through the ``dealflow.plugins`` entry points."""
