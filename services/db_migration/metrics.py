"""The migrator's Prometheus metrics, served at GET /metrics on its status port, from the
state it reports at GET / (migrator.MigrationState)."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .migrator import COMPLETED, Migrator


class MigratorCollector(Collector):
    def __init__(self, migrator: Migrator):
        self.migrator = migrator

    def collect(self):
        state = self.migrator.state
        yield CounterMetricFamily("rasax_migrations_applied", "Schema revisions this migrator applied and committed",
                                  value=self.migrator.applied)
        info = GaugeMetricFamily("rasax_migration_info", "The schema's revision and the migration's status (value 1)",
                                 labels=["current_revision", "target_revision", "status"])
        info.add_metric([state.current_revision or "", state.target_revision or "", state.status], 1)
        yield info
        yield GaugeMetricFamily("rasax_migration_completed", "1 once the schema is at the head revision, else 0",
                                value=int(state.status == COMPLETED))
