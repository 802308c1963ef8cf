"""Jobs API: job runs, materialization, online preview."""
