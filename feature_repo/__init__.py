"""The demo Feast repository governed by Feature Portal (employee attrition)."""
