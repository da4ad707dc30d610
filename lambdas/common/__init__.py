"""Helpers shared by the landing Lambdas: settings, object storage, the landing cores, observability."""
