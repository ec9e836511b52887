-- Per day and model version: how many road users the API scored into each severity class,
-- and their share of the day's predictions by that version.
with label_maps as (
    {{ code_label_maps() }}
),

predictions as (
    select
        logged_on,
        model_version,
        predicted_severity,
        count(*) as predictions
    from {{ ref('stg_prediction_log') }}
    group by all
)

select
    predictions.logged_on,
    predictions.model_version,
    predictions.predicted_severity,
    {{ code_label('severity', 'predictions.predicted_severity') }} as predicted_severity_label,
    predictions.predictions,
    round(
        predictions.predictions
        / sum(predictions.predictions) over (partition by predictions.logged_on, predictions.model_version),
        6
    ) as share
from predictions
cross join label_maps
order by predictions.logged_on, predictions.model_version, predictions.predicted_severity
