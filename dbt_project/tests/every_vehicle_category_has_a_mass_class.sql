-- Every vehicle category of the code book (`catv`) has a mass class in the seed
-- vehicle_mass_classes, so the heaviest other vehicle never falls back on "other vehicle"
-- for a documented category. Shown in Dagster as a check of the seed (a test with two
-- parents needs telling).
{{ config(meta={'dagster': {'ref': {'name': 'vehicle_mass_classes'}}}) }}
select codes.code as vehicle_category_code
from {{ ref('stg_codebook_codes') }} as codes
left join {{ ref('vehicle_mass_classes') }} as mass_classes
    on cast(codes.code as integer) = mass_classes.vehicle_category_code
where codes.codebook_entry = 'vehicules.catv' and mass_classes.vehicle_category_code is null
