"""The KV port on Redis, shared by every process of a deployment."""

from lfusys.storage.redis.failures import KVFailures
from lfusys.storage.redis.kv import RedisKV, open_redis_kv

__all__ = ["KVFailures", "RedisKV", "open_redis_kv"]
