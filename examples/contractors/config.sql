-- pg_forget configuration for contractor management.
SET search_path = contractors, public;
SELECT forget.register_subject('contractor', 'contractors.contractors', active_column => 'is_active');
-- Activity: invoice submissions.
SELECT forget.add_activity('contractors.invoices', 'submitted_at', via => 'contractor_id');
