"""eqprop family (placeholder while building)."""
