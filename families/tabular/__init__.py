"""The tabular family: a classifier of numeric table columns, the smallest example of a family."""
