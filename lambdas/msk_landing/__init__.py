"""MSK landing processor: Kafka records -> bronze + quarantine."""
