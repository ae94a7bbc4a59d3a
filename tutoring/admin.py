from django.contrib import admin

from .models import Course, Tutor

admin.site.register(Course)
admin.site.register(Tutor)
