from django.urls import path

from accounts import views

urlpatterns = [
    path("api/token", views.token),
    path("api/announce", views.announce),
]
