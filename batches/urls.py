from django.urls import path

from batches import views

urlpatterns = [
    path("", views.batch_list, name="batch_list"),
    path("new/", views.batch_create, name="batch_create"),
    path("<int:job_id>/", views.batch_detail, name="batch_detail"),
    path("<int:job_id>/cancel/", views.batch_cancel, name="batch_cancel"),
    path("<int:job_id>/results.jsonl", views.batch_results_jsonl, name="batch_results_jsonl"),
    path("<int:job_id>/results.csv", views.batch_results_csv, name="batch_results_csv"),
]
