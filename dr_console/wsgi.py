"""
WSGI config for dr_console project.

It exposes the WSGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/wsgi/
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'dr_console.settings')

application = get_wsgi_application()

# Loaded: what start-up made stays out of every later full collection (dr_console/heap.py).
from dr_console import heap  # noqa: E402

heap.settle()
