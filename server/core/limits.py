"""The limits every JMESPath evaluation runs under (conditions, ``set_from``, projections)."""

MAX_LENGTH = 2000
"""Longest expression accepted, in characters (conditions, ``set_from``, plugin projections)."""

MAX_STEPS = 200_000
"""Most units of work one evaluation may do: nodes visited, items flattened, values walked
to compare or serialise. A condition over a record takes well under a hundred."""

MAX_VALUE_SIZE = 1_000_000
"""Largest value an evaluation may build or return, in characters of its JSON (strings made
by ``join`` and ``to_string`` included): pipes like ``[@, @] | [@, @] | …`` double a value at
each stage without copying it, and would otherwise be expanded exponentially downstream."""
