"""deskpilot: the multi-tenant AI core behind an IT-service-management product.

The public Python API is :class:`deskpilot.platform.Platform`; components expose their
services and frozen DTOs from their own ``__init__``.
"""

__version__ = "0.1.0"
