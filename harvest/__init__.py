"""The harvest stage: portals.toml, a polite HTTP client, listing platforms, the crawl of one
portal and the raw store. No Prefect here: flows/harvest.py orchestrates it."""
