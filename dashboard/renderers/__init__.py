"""Pure renderers: tables, charts and pictures made from results, tested without a browser."""
