"""Operations: metrics, health endpoints, logging and the start-up check."""
