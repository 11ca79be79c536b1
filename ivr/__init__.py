"""The IVR: flows as versioned JSON documents (``schema``), validated and compiled into one
class per node type (``compiler``, ``nodes``), run per call on the SIP bridge's ``Call``
(``engine``, ``runtime``) with the platform's services behind protocols (``services``)."""
